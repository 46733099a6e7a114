"""The app spoken to as the page's JavaScript speaks to it: the queue's join, then the session's
message stream, events by API name (Stop buttons included, which gradio_client cannot press).
Shared by the crowd test and the soak benchmark. Written by hand: gradio_client hides the
session and the streamed messages this needs."""

import io
import json
import uuid

import httpx
from PIL import Image

TIMEOUT = 300  # seconds one event may take, queueing included: a hang fails, never stalls


class App:
    """The app's events as its config lists them: fn index and input defaults by API name."""

    def __init__(self, url: str):
        config = httpx.get(url + "config", timeout=30).json()
        values = {c["id"]: c.get("props", {}).get("value") for c in config["components"]}
        self.url = url
        self.fns = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}
        self.defaults = {d["api_name"]: [values.get(i) for i in d["inputs"]]
                         for d in config["dependencies"] if d.get("api_name")}

    def page(self) -> "Page":
        return Page(self)


class Page:
    """One browser session."""

    def __init__(self, app: App):
        self.app, self.session = app, uuid.uuid4().hex

    def call(self, api_name: str, *values, on_message=None) -> dict:
        """Join the queue with `values` (the inputs after them at the page's defaults) and read
        this session's messages up to the event's end: its process_completed message (success
        with output, or an error)."""
        data = [*values, *self.app.defaults[api_name][len(values):]]
        joined = httpx.post(self.app.url + "gradio_api/queue/join", timeout=30, json={
            "data": data, "fn_index": self.app.fns[api_name], "session_hash": self.session,
            "event_data": None, "trigger_id": None})
        joined.raise_for_status()
        event = joined.json()["event_id"]
        with httpx.stream("GET", self.app.url + "gradio_api/queue/data", timeout=TIMEOUT,
                          params={"session_hash": self.session}) as messages:
            for line in messages.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") != event:
                    continue
                if on_message:
                    on_message(message)
                if message["msg"] == "process_completed":
                    return message
        raise RuntimeError(f"{api_name}: the stream ended without an answer")

    def stop(self, api_name: str) -> None:
        """A tab's Stop button (not queued)."""
        httpx.post(self.app.url + "gradio_api/run/predict", timeout=30, json={
            "data": [], "fn_index": self.app.fns[api_name], "session_hash": self.session}
        ).raise_for_status()

    def upload(self, image: Image.Image, name: str = "image.png") -> dict:
        """The file data of `image` uploaded as the page uploads a file."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        paths = httpx.post(self.app.url + "gradio_api/upload", timeout=30,
                           files={"files": (name, buffer.getvalue(), "image/png")})
        paths.raise_for_status()
        return {"path": paths.json()[0], "meta": {"_type": "gradio.FileData"}}


def answered(message: dict) -> str:
    """"image" where the event succeeded with an output, else the message its error shows
    ("" where it shows none: a bare failure, which no user can read)."""
    if message["success"]:
        return "image" if message["output"]["data"][0] else ""
    return message["output"].get("error") or ""
