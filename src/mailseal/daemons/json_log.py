"""The JSON log companion of the master: ``maillog_json_file`` beside the text log.

It attaches a :class:`~mailseal.log.json_sink.JsonSink` to the master's
:class:`~mailseal.log.sinks.MailLog` as an observer, so every line the text
sink writes (``maillog_file`` or syslog, which pflogsumm and fail2ban keep
reading) is also written as one JSON object. A file that cannot be opened is
a warning, not a reason to refuse mail; a reload that names another file
switches to it, and an empty value turns the JSON log off.

Reads: maillog_json_file, myhostname.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from mailseal.log.json_sink import JsonSink

if TYPE_CHECKING:
    from mailseal.config.loader import LoadedConfig
    from mailseal.daemons.companions import Companion, MasterContext

__all__ = ["JsonLogCompanion", "companion"]


def companion(context: MasterContext) -> Companion | None:
    """The JSON log, unless ``maillog_json_file`` is empty."""
    if not context.config.base.maillog_json_file:
        return None
    return JsonLogCompanion(context)


class JsonLogCompanion:
    """Owns the open JSON sink and its place among the log's observers."""

    observes_log = True

    def __init__(self, context: MasterContext) -> None:
        self._context = context
        self._program = context.log.program("master")
        self._path = context.config.base.maillog_json_file
        self._hostname = context.config.base.myhostname
        self.sink: JsonSink | None = None

    async def start(self) -> None:
        self._open(self._path)

    def reload(self, config: LoadedConfig) -> None:
        path = config.base.maillog_json_file
        if path == self._path and self.sink is not None:
            return
        self._close()
        self._path = path
        self._hostname = config.base.myhostname
        if path:
            self._open(path)

    async def stop(self) -> None:
        self._close()

    def _warn(self, text: str) -> None:
        self._context.log.warning(self._program, self._context.number, text)

    def _open(self, path: str) -> None:
        try:
            sink = JsonSink(Path(path), self._hostname, warn=self._warn, clock=time.time)
        except OSError as error:
            self._warn(f"cannot open maillog_json_file {path}: {error.strerror or error}")
            return
        self.sink = sink
        self._context.log.add_observer(sink.observe)

    def _close(self) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            self._context.log.remove_observer(sink.observe)
            sink.close()
