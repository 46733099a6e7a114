"""turbo-studio as an MCP server (`python app.py --mcp`, gradio's MCP support): the generation
events are the tools, described by their docstrings; UI-only events are not; a tool call makes
an image on the tiny stand-in."""

import asyncio
import base64
import io

import httpx
import pytest
from PIL import Image

import app

TOOLS = {"text_to_image", "image_to_image", "inpaint", "vega_text_to_image", "vega_image_to_image",
         "compare_variants", "realtime"}


@pytest.fixture(scope="module")
def mcp_url(models_dir):
    settings = app.parse_settings(["--models-dir", str(models_dir), "--mcp"])
    demo = app.create_demo(settings)
    demo.launch(prevent_thread_lock=True, quiet=True,
                **{**app.launch_options(settings), "server_port": None})
    yield demo.local_url
    demo.close()


def test_the_tools_are_the_generation_events_with_their_documented_parameters(mcp_url):
    schema = httpx.get(f"{mcp_url}gradio_api/mcp/schema", timeout=30).json()
    tools = {tool["name"]: tool for tool in schema}
    assert set(tools) == TOOLS  # no Stop, no control-following events
    text_to_image = tools["text_to_image"]
    assert "Returns the PNG image" in text_to_image["description"]
    parameters = text_to_image["inputSchema"]["properties"]
    assert list(parameters)[:6] == ["prompt", "seed", "randomize", "steps", "width", "height"]
    assert "multiple of 64" in parameters["width"]["description"]
    assert parameters["model_id"]["enum"] == ["tiny", "tiny-base"]


def call_text_to_image(url: str, with_progress: bool):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def call():
        async with streamablehttp_client(f"{url}gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                progress = [] if with_progress else None
                result = await session.call_tool(
                    "text_to_image", {"prompt": "a red fox", "seed": 3, "randomize": False,
                                      "steps": 1, "width": 256, "height": 384},
                    progress_callback=(lambda *update: progress.append(update))
                    if with_progress else None)
                return result, progress
    return asyncio.run(call())


def test_a_tool_call_returns_the_image(mcp_url):
    """A client that asks for progress (most do) gets the image itself; one that does not gets
    its address (gradio hands a multi-output tool's result over as text then)."""
    result, progress = call_text_to_image(mcp_url, with_progress=True)
    assert not result.isError and progress
    images = [item for item in result.content if item.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    assert Image.open(io.BytesIO(base64.b64decode(images[0].data))).size == (256, 384)
    texts = " ".join(item.text for item in result.content if item.type == "text")
    assert "3" in texts and "in all" in texts  # the seed used, the timings
    plain, _ = call_text_to_image(mcp_url, with_progress=False)
    assert not plain.isError and "gradio_api/file=" in plain.content[0].text


def test_without_mcp_there_is_no_mcp_endpoint(app_url):
    assert httpx.get(f"{app_url}gradio_api/mcp/schema", timeout=30).status_code == 404
