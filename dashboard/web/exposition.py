"""The Prometheus exposition of ``/metrics``: prometheus_client's formats, written without its per-sample checks.

The metric families are prometheus_client's own (:class:`~prometheus_client.core.Metric` with
its samples), and the format is the one prometheus_client's content negotiation picks
(:func:`~prometheus_client.exposition.choose_encoder`). For the two formats scrapers ask for,
text 0.0.4 and OpenMetrics 1.0.0 with the default ``underscores`` name escaping, the lines are
written here: prometheus_client's encoders check and escape every label name of every sample
(about 9 µs a sample: 23 ms for 200 queues), while ours are fixed, valid names, so only label
values need escaping. The output is byte for byte what prometheus_client writes (the tests
compare both); any other negotiated variant, or a family this writer does not cover (units,
timestamps, exemplars, ``_created`` samples, names outside the legacy character set), goes
through prometheus_client's encoder. This module reads nothing from Redis and must not
import redis.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics import exposition as om
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _go

#: Metric and label names that need no escaping in either format (no colons: OpenMetrics
#: escapes sample names with the label-name rules).
_PLAIN_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Metric types written as they are in both formats.
_TYPES = frozenset({"gauge", "counter"})

class _Families(Collector):
    """A collector over already-built families (for prometheus_client's own encoders)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def encode(families: list[Metric], accept: str) -> tuple[bytes, str]:
    """The families in the format ``accept`` negotiates with prometheus_client's rules, and its
    content type."""
    encoder, content_type = choose_encoder(accept)
    writer = _lean_writer(encoder)
    if writer is not None and all(_covered(metric) for metric in families):
        return writer(families), content_type
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return encoder(registry), content_type


def _lean_writer(encoder: Callable[..., bytes]) -> Callable[[list[Metric]], bytes] | None:
    """Our writer for the encoder prometheus_client chose, when it is one we write the same."""
    if encoder is generate_latest:
        return text_format
    if isinstance(encoder, functools.partial) and not encoder.args:
        keywords = encoder.keywords
        if encoder.func is generate_latest and keywords == {"escaping": om.UNDERSCORES}:
            return text_format
        if encoder.func is om.generate_latest and keywords == {"escaping": om.UNDERSCORES,
                                                               "version": "1.0.0"}:
            return openmetrics_format
    return None


def _covered(metric: Metric) -> bool:
    if metric.type not in _TYPES or metric.unit or not _PLAIN_NAME.match(metric.name):
        return False
    names: set[str] = set()
    for sample in metric.samples:
        if sample.timestamp is not None or sample.exemplar is not None or sample.native_histogram is not None:
            return False
        names.add(sample.name)
        names.update(sample.labels)
    return all(_PLAIN_NAME.match(name) for name in names) and not any(
        name.endswith(("_created", "_gsum", "_gcount")) for name in names)


def _value(text: str) -> str:
    """A label value (or OpenMetrics HELP text): backslash, newline and double quote escaped."""
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float formatting)."""
    text: str = _go(value)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
    return text


def _samples(metric: Metric, out: list[str]) -> None:
    escape = _value
    for sample in metric.samples:
        labels = sample.labels
        if labels:
            pairs = ",".join(f'{k}="{escape(labels[k])}"' for k in sorted(labels))
            out.append(f"{sample.name}{{{pairs}}} {_number(sample.value)}\n")
        else:
            out.append(f"{sample.name} {_number(sample.value)}\n")


def text_format(families: list[Metric]) -> bytes:
    """What ``prometheus_client.exposition.generate_latest`` writes (text format 0.0.4)."""
    out: list[str] = []
    for metric in families:
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {metric.type}\n")
        _samples(metric, out)
    return "".join(out).encode("utf-8")


def openmetrics_format(families: list[Metric]) -> bytes:
    """What ``prometheus_client.openmetrics.exposition.generate_latest`` writes (OpenMetrics 1.0.0)."""
    out: list[str] = []
    for metric in families:
        out.append(f"# HELP {metric.name} {_value(metric.documentation)}\n# TYPE {metric.name} {metric.type}\n")
        _samples(metric, out)
    out.append("# EOF\n")
    return "".join(out).encode("utf-8")
