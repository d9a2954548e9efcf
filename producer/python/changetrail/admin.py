"""changetrail.admin - a per-object "History" page in the Django admin.

    from changetrail.admin import ChangetrailHistoryAdmin

    @admin.register(Article)
    class ArticleAdmin(ChangetrailHistoryAdmin, admin.ModelAdmin):
        pass

The admin's own "History" button then shows changetrail's history of the
object, newest first: when, who (the actor), the context (request method and
URL, request id), the operation and the diff per field (from -> to), with a
link to the object's state at each version (?version=N). Read from MongoDB
through changetrail.history (settings.CHANGETRAIL["MONGODB"]).
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "changetrail",
                         "object_history.html")


def _show(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, default=str)


def field_rows(record: Dict[str, Any]) -> List[Dict[str, str]]:
    """The record's changes per field: [{field, from, to}] (nested paths dotted)."""
    rows = []
    for c in record.get("changes") or []:
        path = c["path"]
        if path and path[0] == "__relations__":
            name = ".".join(str(x) for x in path[1:2])
            val = c.get("value") or {}
            link = f'{val.get("collection", "")}/{val.get("document_id", "")}'
            rows.append({"field": name, "from": link if c["op"] == "remove" else "—",
                         "to": link if c["op"] == "add" else "—"})
            continue
        name = ".".join(str(x) for x in path) or "(document)"
        if c["op"] == "change":
            rows.append({"field": name, "from": _show(c.get("from")), "to": _show(c.get("to"))})
        elif c["op"] == "add":
            rows.append({"field": name, "from": "—", "to": _show(c.get("value"))})
        else:
            rows.append({"field": name, "from": _show(c.get("value")), "to": "—"})
    return rows


class ChangetrailHistoryAdmin:
    """ModelAdmin mixin: the object's "History" page shows changetrail's history."""

    changetrail_history_template = None  # a template name to use instead of the packaged one

    def history_view(self, request, object_id, extra_context=None):
        from django.contrib.admin.utils import unquote
        from django.core.exceptions import PermissionDenied
        from django.template import engines
        from django.template.response import TemplateResponse

        from . import history
        from .django import collection_of

        model = self.model
        obj = self.get_object(request, unquote(object_id))
        pk = obj.pk if obj is not None else unquote(object_id)
        # a deleted object's history too, for who may view the model
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        h = history.get_default()
        coll = collection_of(model)
        records = h.log(coll, pk)
        contexts: Dict[str, Dict[str, Any]] = {}
        rows = []
        for r in records:
            cid = r.get("context_id")
            if cid and cid not in contexts:
                try:
                    contexts[cid] = h.context(cid)
                except history.HistoryError:
                    contexts[cid] = {"metadata": {}}
            md = contexts.get(cid, {}).get("metadata", {}) if cid else {}
            rows.append({"record": r, "fields": field_rows(r), "metadata": md,
                         "url": md.get("url"), "method": md.get("method"), "request_id": md.get("request_id")})
        state = None
        v = request.GET.get("version")
        if v and v.isdigit():
            try:
                st = h.version(coll, pk, int(v))
                state = {"version": st["version"], "deleted": st["deleted"], "ts": st["ts"],
                         "items": [(k, _show(x)) for k, x in (st["doc"] or {}).items()]}
            except history.HistoryError as e:
                state = {"error": str(e)}
        opts = model._meta
        ctx = {
            **self.admin_site.each_context(request),
            "title": f"Change history: {obj}" if obj is not None else f"Change history: {pk}",
            "subtitle": None,
            "rows": rows,
            "state": state,
            "object": obj,
            "object_id": pk,
            "opts": opts,
            "module_name": str(opts.verbose_name_plural),
            "collection": coll,
            "app_label": opts.app_label,
            "preserved_filters": self.get_preserved_filters(request),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        if self.changetrail_history_template:
            return TemplateResponse(request, self.changetrail_history_template, ctx)
        with open(_TEMPLATE, encoding="utf-8") as f:
            tpl = engines["django"].from_string(f.read())
        from django.http import HttpResponse
        return HttpResponse(tpl.render(ctx, request))
