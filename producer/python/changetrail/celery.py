"""changetrail.celery - the request's context carried into Celery tasks.

Celery is imported only by install(); the helpers are plain functions, so any
task queue can use them:

    # where the task is sent (inside a request's context)
    headers = changetrail.celery.context_headers()
    task.apply_async(args, headers=headers)

    # where it runs (the worker)
    with changetrail.celery.task_context(task.request, task=task.name):
        ...   # events carry the request's context id and metadata

or, for Celery, once at start-up: changetrail.celery.install(app), which
connects before_task_publish (adds the headers), task_prerun and
task_postrun (opens / closes the context around each task).

Headers: "changetrail_context_id" (the id) and "changetrail_context" (the
metadata as JSON text). In the worker the context is the same one when it is
still open in that process (a thread or eager task), else it is continued
with ct_context_join: same id, the request's metadata plus the task's, and no
begin/end markers of its own.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from . import (Producer, context, current_context, get_default_producer, join_context, live_context,
               use_context)

HEADER_ID = "changetrail_context_id"
HEADER_METADATA = "changetrail_context"

__all__ = ["HEADER_ID", "HEADER_METADATA", "context_headers", "task_context", "install"]


def context_headers() -> Dict[str, str]:
    """The headers that carry the context open here ({} when none)."""
    ctx = current_context()
    if ctx is None:
        return {}
    return {HEADER_ID: ctx.id, HEADER_METADATA: json.dumps(ctx.metadata, ensure_ascii=False,
                                                           separators=(",", ":"), default=str)}


def _headers_of(request: Any) -> Mapping[str, Any]:
    """Headers from a dict, or a Celery task request (its headers, or its
    attributes: Celery copies custom headers onto task.request)."""
    if isinstance(request, Mapping):
        return request
    out: Dict[str, Any] = {}
    for src in (getattr(request, "headers", None) or {}, getattr(request, "__dict__", {})):
        for k in (HEADER_ID, HEADER_METADATA):
            if k in src and k not in out:
                out[k] = src[k]
    return out


class task_context:
    """Context manager (and decorator) that runs a task in the context its
    headers name; a plain new context when they name none."""

    def __init__(self, request: Any, producer: Optional[Producer] = None, **metadata: Any):
        self._headers = _headers_of(request)
        self._producer = producer
        self._metadata = metadata
        self._cm = None

    def __enter__(self) -> str:
        cid = self._headers.get(HEADER_ID)
        md: Dict[str, Any] = {}
        if self._headers.get(HEADER_METADATA):
            try:
                md = dict(json.loads(self._headers[HEADER_METADATA]))
            except (ValueError, TypeError):
                md = {}
        md.update(self._metadata)
        p = self._producer if self._producer is not None else get_default_producer()
        live = live_context(cid) if cid else None
        if live is not None and live.producer is p:
            self._cm = _Nested(live, self._metadata)
        elif cid:
            self._cm = join_context(cid, p, **md)
        else:
            self._cm = context(p, **md)
        return self._cm.__enter__()

    def __exit__(self, *exc) -> None:
        cm, self._cm = self._cm, None
        cm.__exit__(*exc)


class _Nested:
    """The live context made current here, with extra metadata merged."""

    def __init__(self, ctx, metadata):
        self._ctx, self._metadata, self._cm = ctx, metadata, None

    def __enter__(self) -> str:
        self._cm = use_context(self._ctx)
        self._cm.__enter__()
        self._ctx.merge(self._metadata)
        return self._ctx.id

    def __exit__(self, *exc) -> None:
        self._cm.__exit__(*exc)


def install(app: Any = None, producer: Optional[Producer] = None) -> None:
    """Connects Celery's signals: before_task_publish adds context_headers() to
    each message, task_prerun opens task_context(task.request, task=name),
    task_postrun closes it."""
    from celery import signals

    open_: Dict[str, task_context] = {}

    def publish(headers=None, **kw):
        if headers is not None:
            headers.update(context_headers())

    def prerun(task_id=None, task=None, **kw):
        cm = task_context(task.request, producer, task=task.name)
        cm.__enter__()
        open_[task_id] = cm

    def postrun(task_id=None, **kw):
        cm = open_.pop(task_id, None)
        if cm is not None:
            cm.__exit__(None, None, None)

    signals.before_task_publish.connect(publish, weak=False)
    signals.task_prerun.connect(prerun, weak=False)
    signals.task_postrun.connect(postrun, weak=False)
