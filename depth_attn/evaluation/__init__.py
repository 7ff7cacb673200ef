"""Evaluation of depth on bags: per-frame CSV rows, summaries, offline runs, the configuration sweep
and its Pareto report. No ROS here; the eval node (``depth_attn.ros.eval_node``) uses these."""

from depth_attn.evaluation.records import (
    CSV_COLUMNS,
    CSV_NAME,
    PLOT_NAME,
    SUMMARY_NAME,
    CsvLog,
    format_table,
    frame_row,
    plot_frames,
    read_csv,
    summarize,
    write_summary,
)

__all__ = [
    "CSV_COLUMNS", "CSV_NAME", "PLOT_NAME", "SUMMARY_NAME", "CsvLog", "format_table", "frame_row", "plot_frames",
    "read_csv", "summarize", "write_summary",
]
