"""KITTI raw data, rosbag2 writing/reading (rosbags, no ROS) and the sample drive of the shared frames."""
