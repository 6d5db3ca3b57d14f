"""Content analyzer: ffprobe metadata of media files, in the content-analyzer template. With no
file given it probes a one-second test tone made here with the standard library."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path
from typing import Any

from ..agent import AgentTask
from ..errors import ConfigError, TransferTooLargeError
from .base import AgentRequest, WorkflowAgent
from .schemas import ContentOutput

MEDIA_DIR = "/data/media"


def test_tone(seconds: float = 1.0, rate: int = 8000, hz: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV file: a real media file ffprobe can read, made without ffmpeg."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * n / rate))) for n in range(int(seconds * rate)))
        w.writeframes(frames)
    return buf.getvalue()


class ContentAnalyzerAgent(WorkflowAgent):
    name = "content"
    summary = "ffprobe metadata (format, duration, streams) of media files"
    instructions = ("For each path in files, run ffprobe (-print_format json -show_format -show_streams) and write "
                    "{files: [{name, format_name, duration_s, bit_rate, size, streams: [{codec_type, codec_name, "
                    "sample_rate, channels, width, height}]}]}; a file ffprobe cannot read gets an error entry.")
    environment = "Debian 12 with ffmpeg/ffprobe and Python 3.11; no network."
    result_schema = ContentOutput

    def _files(self, request: AgentRequest) -> dict[str, bytes]:
        if not request.files:
            return {f"{MEDIA_DIR}/test-tone.wav": test_tone()}
        out = {}
        for n, path in enumerate(request.files):
            p = Path(path)
            if not p.is_file():
                raise ConfigError("file", f"{p} is not a file")
            size = p.stat().st_size
            if size > self.security_config.max_upload_bytes:  # refused before the file is even read
                raise TransferTooLargeError("upload", str(p), size, self.security_config.max_upload_bytes)
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in p.name) or f"file{n}"
            out[f"{MEDIA_DIR}/{n:02d}-{safe}"] = p.read_bytes()
        return out

    def build_task(self, request: AgentRequest) -> AgentTask:
        files = self._files(request)
        return AgentTask(description="probe media files", inputs={"files": sorted(files)}, files=files)

    def summarize(self, output: Any) -> str:
        return "; ".join(f"{f['name']}: {f.get('format_name')} {f.get('duration_s')} s" for f in output["files"])
