"""Evaluation: video-level metrics and fusion (:mod:`.metrics`, pure) and testing trained streams on the
shards (:mod:`.run`)."""

from . import metrics
from .run import StreamResult, fusion_metrics, read_scores, stream_metrics, test_stream, tvl1_seconds_per_pair, write_scores

__all__ = ["metrics", "StreamResult", "test_stream", "stream_metrics", "fusion_metrics", "tvl1_seconds_per_pair",
           "write_scores", "read_scores"]
