"""One decode pass over an MPEG-4 video -> every compressed-domain array the shards store.

For each frame, in display order (every array has one entry per frame so that all streams of a shard share
its offsets; entries that do not apply are constant fill values), plus the list of I-frames (one per GOP,
(H, W, 3) uint8 RGB, in ``CompressedVideo.iframes``; the stage stores them as JPEG in a second file):

=============  ===================  =========================================================================
stream          shape, dtype         content
=============  ===================  =========================================================================
frame_type     (), uint8            0 = I-frame, 1 = P-frame
gop_index      (), int32            GOP number in the video (0-based; a GOP starts at each I-frame)
gop_pos        (), int32            position in the GOP (0 = the I-frame)
mv             (2, H, W), uint8     motion to the previous frame (DMC-Net), CoViAR encoding; 128 at I
mv_acc         (2, H, W), uint8     motion traced back to the GOP's I-frame (CoViAR), encoded; 128 at I
residual       (H, W, 3), uint8     frame - compensate(previous frame, mv), +128 clipped; 128 at I
residual_acc   (H, W, 3), uint8     frame - compensate(I-frame, mv_acc), +128 clipped; 128 at I
=============  ===================  =========================================================================

Vectors are in pixels with the package's sign convention (``motion / motion_scale = src - dst``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import cv2
import numpy as np

from .backends import DecodedFrame, NoMotionVectorsError
from .encoding import encode_mv_units, encode_residual_of
from .motion import accumulate_units, block_grid, expand_grid
from .residual import SubpelReference

STREAMS = ("frame_type", "gop_index", "gop_pos", "mv", "mv_acc", "residual", "residual_acc")
I_FRAME, P_FRAME = 0, 1


class GopError(ValueError):
    """The picture structure is not I/P only, or the video does not start with an I-frame."""


@dataclass
class CompressedVideo:
    """Per-frame lists (one entry per decoded frame, see the module table) and video facts."""

    width: int
    height: int
    scale: int                                   # motion units: 1/scale pixel (2 = MPEG-4 half-pel)
    frames: dict[str, list] = field(default_factory=lambda: {k: [] for k in STREAMS})
    iframes: list = field(default_factory=list)  # (H, W, 3) uint8 RGB, one per GOP
    p_frames_with_vectors: int = 0

    @property
    def num_frames(self) -> int:
        return len(self.frames["frame_type"])

    @property
    def num_gops(self) -> int:
        return int(self.frames["gop_index"][-1]) + 1 if self.num_frames else 0


def extract(decoded: Iterable[DecodedFrame], bound: float = 20.0, scale: int = 2,
            codec: str = "mpeg4") -> CompressedVideo:
    """Run the decoder output of one video through dense maps, accumulation, compensation and encodings.

    Raises :class:`GopError` for B-frames (or other non-I/P pictures) and a first frame that is not an
    I-frame, :class:`NoMotionVectorsError` when P-frames exist but the decoder exported no vector at all,
    and ValueError for an empty video.
    """
    out: CompressedVideo | None = None
    prev_ref = iref = acc = None
    gop, pos, n_p = -1, 0, 0
    for i, fr in enumerate(decoded):
        img = fr.image
        if out is None:
            h, w = img.shape[:2]
            out = CompressedVideo(w, h, scale)
            mid_mv = np.full((2, h, w), 128, np.uint8)
            mid_res = np.full((h, w, 3), 128, np.uint8)
        f = out.frames
        if fr.pict_type == "I":
            gop, pos, acc = gop + 1, 0, None
            iref = prev_ref = SubpelReference(img, scale)
            f["frame_type"].append(I_FRAME)
            out.iframes.append(cv2.cvtColor(img, cv2.COLOR_RGBA2RGB))
            for k, v in (("mv", mid_mv), ("mv_acc", mid_mv), ("residual", mid_res), ("residual_acc", mid_res)):
                f[k].append(v)
        elif fr.pict_type == "P":
            if gop < 0:
                raise GopError("the first frame is a P-frame, not an I-frame")
            pos += 1
            n_p += 1
            out.p_frames_with_vectors += bool(fr.has_side_data)
            grid, g = block_grid(fr.table, h, w, scale)
            units = expand_grid(grid, g, h, w)
            acc = units if acc is None else accumulate_units(acc, units, scale)
            f["frame_type"].append(P_FRAME)
            q = expand_grid(encode_mv_units(grid, scale, bound, channels_last=True), g, h, w)
            f["mv"].append(np.ascontiguousarray(q.transpose(2, 0, 1)))
            f["mv_acc"].append(encode_mv_units(acc, scale, bound))
            f["residual"].append(cv2.cvtColor(encode_residual_of(img, prev_ref.predict_units(units)),
                                              cv2.COLOR_RGBA2RGB))
            f["residual_acc"].append(cv2.cvtColor(encode_residual_of(img, iref.predict_units(acc)),
                                                  cv2.COLOR_RGBA2RGB))
            prev_ref = SubpelReference(img, scale)
        else:
            raise GopError(f"frame {i} is a {fr.pict_type}-frame: only I- and P-frames are supported "
                           "(re-encode with `prep-cli reencode`, which uses no B-frames)")
        f["gop_index"].append(gop)
        f["gop_pos"].append(pos)
    if out is None:
        raise ValueError("the video has no frames")
    if n_p and out.p_frames_with_vectors == 0:
        raise NoMotionVectorsError(f"codec {codec!r}: {n_p} P-frames but no motion vectors were exported")
    return out


__all__ = ["STREAMS", "I_FRAME", "P_FRAME", "GopError", "CompressedVideo", "extract"]
