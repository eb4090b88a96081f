"""torch.utils.tensorboard's SummaryWriter for gradflow: scalars, histograms, images, text and
hyperparameters written as TensorBoard event files by TensorBoard's own writer
(`tensorboard.summary.writer.event_file_writer.EventFileWriter`, with its protocol buffers),
so `tensorboard --logdir DIR` and its EventAccumulator read them as they read PyTorch's.

It needs the `tensorboard` package: `pip install 'gradflow[tensorboard]'`. Images are PNGs
encoded here (zlib), so Pillow is not needed.
"""
from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from datetime import datetime
from typing import Any

import numpy as np

from .. import dtypes

try:
    from tensorboard.compat.proto.event_pb2 import Event, SessionLog
    from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
except ImportError as err:
    raise ImportError(f"gradflow.utils.tensorboard needs the tensorboard package ({err}); "
                      "install it with: pip install 'gradflow[tensorboard]'") from err

__all__ = ["SummaryWriter"]


def _numpy(value: Any, what: str) -> np.ndarray:
    """A tensor (on any device), NumPy array or number as a host NumPy array."""
    from ..tensor import Tensor
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype == object or dtypes.kind(array.dtype) in "USV":
        raise TypeError(f"SummaryWriter.{what}: expected a tensor, array or number, got "
                        f"{type(value).__name__}")
    return array


def _scalar(tag: str, value: Any, what: str = "add_scalar") -> Summary:
    array = _numpy(value, what).squeeze()
    if array.ndim != 0:
        raise ValueError(f"SummaryWriter.{what}: {tag!r} needs one value, got shape "
                         f"{tuple(array.shape)}")
    return Summary(value=[Summary.Value(tag=tag, simple_value=float(array))])


def _default_bins() -> list:
    """TensorFlow's histogram buckets: +-1e-12 growing by 10% up to 1e20 (torch's default)."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0.0] + edges


def _histogram(values: np.ndarray, bins: Any, max_bins: int | None) -> HistogramProto:
    """torch.utils.tensorboard's make_histogram (after TensorFlow's histogram.cc): the counts
    between the first and last nonempty bucket, with one empty bucket on the left so
    TensorBoard, which keeps right edges only, has the leftmost edge too."""
    values = values.reshape(-1).astype(np.float64)
    if values.size == 0:
        raise ValueError("SummaryWriter.add_histogram: the values are empty")
    if not np.isfinite(values).all():
        raise ValueError("SummaryWriter.add_histogram: the values hold NaN or infinity")
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        counts = np.pad(counts, (0, -len(counts) % group)).reshape(-1, group).sum(axis=-1)
        limits = np.concatenate([limits[:-1:group], limits[-1:]])
    filled = np.cumsum(counts > 0)
    start, end = np.searchsorted(filled, [0, filled[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    return HistogramProto(min=values.min(), max=values.max(), num=len(values),
                          sum=values.sum(), sum_squares=values.dot(values),
                          bucket_limit=limits.tolist(), bucket=counts.tolist())


def _to_hwc(image: np.ndarray, dataformats: str) -> np.ndarray:
    """An image laid out as `dataformats` ('CHW', 'HWC', 'HW'), as (H, W, 3 or 4)."""
    layout = dataformats.upper()
    if sorted(layout) not in (sorted("CHW"), sorted("HW")):
        raise ValueError(f"SummaryWriter.add_image: dataformats must be 'CHW', 'HWC' or 'HW' "
                         f"(in any order), got {dataformats!r}")
    if image.ndim != len(layout):
        raise ValueError(f"SummaryWriter.add_image: dataformats {dataformats!r} needs a "
                         f"{len(layout)}-D image, got shape {tuple(image.shape)}")
    if len(layout) == 2:
        image = image.transpose([layout.index(c) for c in "HW"])[:, :, None]
    else:
        image = image.transpose([layout.index(c) for c in "HWC"])
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.shape[2] not in (3, 4):
        raise ValueError(f"SummaryWriter.add_image: an image has 1, 3 or 4 channels, got "
                         f"{image.shape[2]}")
    return image


def _png(image: np.ndarray) -> bytes:
    """`image` (H, W, 3 or 4 uint8) as a PNG file: one IDAT chunk, filter 0 on every row."""
    height, width, channels = image.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    rows = np.concatenate([np.zeros((height, 1), np.uint8),
                           np.ascontiguousarray(image).reshape(height, -1)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if channels == 4 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def _image(tag: str, value: Any, dataformats: str) -> Summary:
    image = _to_hwc(_numpy(value, "add_image"), dataformats)
    # NOTE: as torch: uint8 images are 0..255 already, any other dtype is 0..1
    scale = 1 if image.dtype == np.uint8 else 255
    pixels = (image.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    height, width, channels = pixels.shape
    return Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=height, width=width, colorspace=channels, encoded_image_string=_png(pixels)))])


def _text(tag: str, text: str) -> Summary:
    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Summary(value=[Summary.Value(tag=tag + "/text_summary", metadata=metadata,
                                        tensor=tensor)])


def _hparams(hparam_dict: dict, metric_dict: dict, domains: dict | None) -> tuple:
    """The hparams plugin's three summaries (experiment, session start, session end), as
    torch.utils.tensorboard.summary.hparams writes them."""
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import (
        HParamsPluginData,
        SessionEndInfo,
        SessionStartInfo,
    )

    domains = domains or {}
    for key, values in domains.items():
        if key not in hparam_dict or not isinstance(values, list) or \
                not all(isinstance(v, type(hparam_dict[key])) for v in values):
            raise TypeError(f"SummaryWriter.add_hparams: hparam_domain_discrete[{key!r}] must "
                            f"be a list of values of the type of hparam_dict[{key!r}]")
    start = SessionStartInfo()
    infos = []
    for key, value in hparam_dict.items():
        if value is None:
            continue
        if isinstance(value, str):
            start.hparams[key].string_value = value
            kind, field = "DATA_TYPE_STRING", "string_value"
        else:
            # NOTE: bools too are numbers (1.0, 0.0), as torch writes them
            number = _numpy(value, "add_hparams").reshape(-1)
            if number.size != 1 or dtypes.kind(number.dtype) not in "biuf":
                raise ValueError(f"SummaryWriter.add_hparams: hparam_dict[{key!r}] must be a "
                                 f"bool, str, number or one-element tensor, got {value!r}")
            start.hparams[key].number_value = float(number[0])
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        discrete = None
        if key in domains:
            discrete = struct_pb2.ListValue(values=[struct_pb2.Value(**{field: v})
                                                    for v in domains[key]])
        infos.append(api_pb2.HParamInfo(name=key, type=api_pb2.DataType.Value(kind),
                                        domain_discrete=discrete))

    def summary(tag: str, **content: Any) -> Summary:
        data = HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **content)
        meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()))
        return Summary(value=[Summary.Value(tag=tag, metadata=meta)])

    experiment = api_pb2.Experiment(hparam_infos=infos, metric_infos=[
        api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_dict])
    end = SessionEndInfo(status=api_pb2.Status.Value("STATUS_SUCCESS"))
    return (summary(metadata.EXPERIMENT_TAG, experiment=experiment),
            summary(metadata.SESSION_START_INFO_TAG, session_start_info=start),
            summary(metadata.SESSION_END_INFO_TAG, session_end_info=end))


class SummaryWriter:
    """Writes TensorBoard event files into `log_dir` (torch.utils.tensorboard.SummaryWriter).

    log_dir defaults to runs/<month><day>_<hh-mm-ss>_<host><comment>. `purge_step` hides the
    events of an earlier, crashed run at or after that step (write the same log_dir when
    resuming). Events are queued and written by a background thread every `flush_secs`
    seconds, or when `max_queue` are pending, or on `flush()` and `close()`; a closed writer
    reopens on the next `add_*`.
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, comment: str = "",
                 purge_step: int | None = None, max_queue: int = 10, flush_secs: int = 120,
                 filename_suffix: str = "") -> None:
        if not log_dir:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = str(log_dir)
        self.purge_step = purge_step
        self.max_queue, self.flush_secs = max_queue, flush_secs
        self.filename_suffix = filename_suffix
        self._writers: dict | None = None  # see _all
        self._main()
        self.default_bins = _default_bins()

    def _open(self, log_dir: str) -> EventFileWriter:
        return EventFileWriter(log_dir, self.max_queue, self.flush_secs, self.filename_suffix)

    def _all(self) -> dict:
        """log dir -> its writer, the main one (log_dir's) first, opened afresh after close()
        (in a new event file), with the purge events first when purge_step was given."""
        if self._writers is None:
            writer = self._open(self.log_dir)
            self._writers = {self.log_dir: writer}
            if self.purge_step is not None:
                writer.add_event(Event(step=self.purge_step, wall_time=time.time(),
                                       file_version="brain.Event:2"))
                writer.add_event(Event(step=self.purge_step, wall_time=time.time(),
                                       session_log=SessionLog(status=SessionLog.START)))
                self.purge_step = None
        return self._writers

    def _main(self) -> EventFileWriter:
        return self._all()[self.log_dir]

    @staticmethod
    def _add(writer: EventFileWriter, summary: Summary, global_step: int | None,
             walltime: float | None) -> None:
        event = Event(summary=summary, wall_time=time.time() if walltime is None else walltime)
        if global_step is not None:
            event.step = int(global_step)
        writer.add_event(event)

    def get_logdir(self) -> str:
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None,
                   walltime: float | None = None, new_style: bool = False,
                   double_precision: bool = False) -> None:
        """One value (a number or one-element tensor) of the series `tag`. `new_style` and
        `double_precision` are accepted for torch's signature; the value is stored as
        TensorBoard's simple_value (float32)."""
        self._add(self._main(), _scalar(tag, scalar_value), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict,
                    global_step: int | None = None, walltime: float | None = None) -> None:
        """Several series on one chart: each key gets its own run folder,
        log_dir/<main_tag>_<key>, holding the tag `main_tag` (torch's layout)."""
        walltime = time.time() if walltime is None else walltime
        writers = self._all()
        for tag, value in tag_scalar_dict.items():
            log_dir = os.path.join(self.log_dir, main_tag.replace("/", "_") + "_" + tag)
            if log_dir not in writers:
                writers[log_dir] = self._open(log_dir)
            self._add(writers[log_dir], _scalar(main_tag, value, "add_scalars"),
                      global_step, walltime)

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None,
                      bins: Any = "tensorflow", walltime: float | None = None,
                      max_bins: int | None = None) -> None:
        """The distribution of `values`; bins 'tensorflow' (TensorFlow's exponential
        buckets), or anything np.histogram takes ('auto', 'fd', a count, edges)."""
        edges = self.default_bins if isinstance(bins, str) and bins == "tensorflow" else bins
        histo = _histogram(_numpy(values, "add_histogram"), edges, max_bins)
        self._add(self._main(), Summary(value=[Summary.Value(tag=tag, histo=histo)]),
                  global_step, walltime)

    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None,
                  walltime: float | None = None, dataformats: str = "CHW") -> None:
        """One image: uint8 in 0..255 or floats in 0..1, laid out as `dataformats`
        ('CHW', 'HWC' or 'HW'), with 1 (grey), 3 (RGB) or 4 (RGBA) channels."""
        self._add(self._main(), _image(tag, img_tensor, dataformats), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        """A string (Markdown) under `tag`, for TensorBoard's text tab."""
        self._add(self._main(), _text(tag, text_string), global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict,
                    hparam_domain_discrete: dict | None = None, run_name: str | None = None,
                    global_step: int | None = None) -> None:
        """One run's hyperparameters and final metrics for TensorBoard's HParams tab, in a
        sub-run log_dir/<run_name> (default: the time), as torch writes them."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("SummaryWriter.add_hparams: hparam_dict and metric_dict must be "
                            "dicts")
        summaries = _hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        log_dir = os.path.join(self.log_dir, run_name or str(time.time()))
        with SummaryWriter(log_dir=log_dir) as run:
            for summary in summaries:
                self._add(run._main(), summary, global_step, None)
            for key, value in metric_dict.items():
                run.add_scalar(key, value, global_step)

    def flush(self) -> None:
        """Write every pending event to disk."""
        for writer in (self._writers or {}).values():
            writer.flush()

    def close(self) -> None:
        """Flush and close the event files (a second close does nothing)."""
        for writer in (self._writers or {}).values():
            writer.flush()
            writer.close()
        self._writers = None

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
