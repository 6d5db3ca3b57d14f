# Content analyzer (offline template): ffprobe metadata of the media files in /data/media.
import json
import os
import subprocess

with open("/data/inputs.json") as f:
    inp = json.load(f)
out = []
for path in inp["files"]:
    probe = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        out.append({"name": os.path.basename(path), "error": probe.stderr.strip()[-500:]})
        continue
    info = json.loads(probe.stdout)
    fmt = info.get("format", {})
    streams = [{k: s[k] for k in ("codec_type", "codec_name", "sample_rate", "channels", "width", "height") if k in s}
               for s in info.get("streams", [])]
    out.append({"name": os.path.basename(path), "format_name": fmt.get("format_name"),
                "duration_s": float(fmt["duration"]) if "duration" in fmt else None,
                "bit_rate": int(fmt["bit_rate"]) if "bit_rate" in fmt else None,
                "size": int(fmt.get("size", os.path.getsize(path))), "streams": streams})
with open("/output/results.json", "w") as f:
    json.dump({"files": out}, f)
print(f"probed {len(out)} files")
