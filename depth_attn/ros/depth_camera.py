"""Camera pairing for the depth node: each image gets the camera info with its exact stamp (else the
newest one of its frame), converted once into the intrinsics and the camera info that go out with
the depth, at the camera's resolution or at the network's."""

from __future__ import annotations

from typing import Callable, Optional, Tuple

from sensor_msgs.msg import CameraInfo

from depth_attn.camera_info import same_view
from depth_attn.geometry import Intrinsics
from depth_attn.ros import convert
from depth_attn.stream import StampCache, Throttle

Paired = Tuple[Intrinsics, CameraInfo]


class CameraPairing:
    """The camera infos received (checked; a bad one goes to ``on_bad``) and their pairing with images.
    ``topic_name``: the camera_info topic, named in the warnings (set once subscribed)."""

    def __init__(self, capacity: int, logger, throttle: Throttle,
                 on_bad: Callable[[str, BaseException], None]) -> None:
        self.infos: StampCache[CameraInfo] = StampCache(capacity)
        self.frames_without_info = 0
        self.topic_name = "camera_info"
        self.warned_distortion = False
        self._warned_fallback = False
        self._warned_sizes: set = set()  # (camera info size, image size) pairs refused, each warned once
        self._logger = logger
        self._throttle = throttle
        self._on_bad = on_bad
        self._info_cache: Optional[tuple] = None  # (key, camera info in, intrinsics, camera info out)
        self._output_info_cache: Optional[tuple] = None  # the same at the network's scale (depth_resolution)

    def add(self, msg: CameraInfo) -> None:
        """A camera info from the subscription (cheap: never blocks)."""
        try:
            convert.check_camera_info(msg)
        except ValueError as exc:
            self._on_bad("camera_info", exc)
            return
        if not self.warned_distortion and any(msg.d):
            self.warned_distortion = True
            self._logger.warning(
                f"camera_info on {self.topic_name} has a non-zero distortion D={list(msg.d)}: this node "
                "expects rectified images (image_rect, e.g. from image_proc's rectify node) and projects with P; "
                "an unrectified image gives bent point clouds")
        self.infos.add(convert.stamp_to_ns(msg.header.stamp), msg.header.frame_id, msg)

    def for_image(self, header, width: int, height: int, wait_s: float = 0.0) -> Optional[Paired]:
        """The intrinsics and the depth image's camera info (with the image's header), from the camera
        info with the image's exact stamp (waiting up to ``wait_s`` for it: drivers publish it just after
        the image), else the newest one of the same frame (warned); scaled when the camera info describes
        the same view at another resolution, refused (None, one warning per sizes) when it describes
        another aspect: it is not this image's camera."""
        timeouts = self.infos.timeouts
        match = self.infos.match(convert.stamp_to_ns(header.stamp), header.frame_id, wait_s)
        if self.infos.timeouts > timeouts and self._throttle("info_wait"):
            self._logger.warning(
                f"the camera_info with the stamp of an image on frame '{header.frame_id}' did not come within "
                f"camera_info_wait={wait_s:g} s ({self.infos.timeouts} so far): using the newest camera_info of "
                "the frame for it")
        if match.item is None:
            self.frames_without_info += 1
            if self._throttle("no_info"):
                self._logger.warning(
                    f"no camera_info for frame '{header.frame_id}' on {self.topic_name} yet: publishing "
                    f"depth only (no points, no depth/camera_info)")
            return None
        fallback_mode = self.infos.consecutive_fallbacks >= self.infos.FALLBACK_MODE
        if not match.exact and fallback_mode and not self._warned_fallback:
            self._warned_fallback = True
            self._logger.warning(
                "camera_info stamps do not match the image stamps; using the latest camera_info of frame "
                f"'{header.frame_id}' for every image")
        info = match.item
        info_wh = convert.camera_info_image_size(info)
        if info_wh != (width, height) and not same_view(info_wh, (width, height)):
            self.frames_without_info += 1
            if (info_wh, (width, height)) not in self._warned_sizes:
                self._warned_sizes.add((info_wh, (width, height)))
                self._logger.warning(
                    f"camera_info on {self.topic_name} describes a {info_wh[0]}x{info_wh[1]} image but the image is "
                    f"{width}x{height}, another aspect (not one view at another resolution): its intrinsics do not "
                    "fit it, so this image gets depth only (no points, no depth/camera_info)")
            return None
        key = (id(info), width, height)
        if self._info_cache is None or self._info_cache[0] != key:  # a new camera info: convert it once
            k = convert.camera_info_to_intrinsics(info, rectified=True)  # binning and roi applied
            if info_wh == (width, height):  # the depth is on the image's pixels: the same camera info
                out = CameraInfo(width=width, height=height, distortion_model=info.distortion_model, d=info.d,
                                 k=info.k, r=info.r, p=info.p, binning_x=info.binning_x, binning_y=info.binning_y,
                                 roi=info.roi)
            else:
                k = k.resized(info_wh, (width, height))
                out = convert.make_camera_info(k, width, height, D=info.d, distortion_model=info.distortion_model)
            self._info_cache = (key, info, k, out)  # holding info keeps its id unique
        _, _, k, out = self._info_cache
        out.header = header
        return k, out

    def at_output_scale(self, paired: Paired, camera_wh: Tuple[int, int], output_hw: Tuple[int, int],
                        estimator) -> Paired:
        """The intrinsics and camera info of depth published at the network's scale (``output_hw``):
        the camera's scaled to that grid (converted once per camera info and size)."""
        k, info = paired
        key = (id(info), camera_wh, output_hw)
        if self._output_info_cache is None or self._output_info_cache[0] != key:
            out_k = estimator.output_intrinsics(k, camera_wh, output_hw)
            out = convert.make_camera_info(out_k, output_hw[1], output_hw[0], D=info.d,
                                           distortion_model=info.distortion_model)
            self._output_info_cache = (key, info, out_k, out)  # holding info keeps its id unique
        _, _, out_k, out = self._output_info_cache
        out.header = info.header
        return out_k, out
