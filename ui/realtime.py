"""Real-time mode of the Text-to-Image tab: typing (or moving a slider) generates."""

import gradio as gr

from pipelines.realtime import NewestOnly
from pipelines.engine import LocalEngine
from pipelines.errors import UserError
from pipelines.requests import Text2Image
from ui.generation import document, inputs_of
from ui.running import describe, run_request, user_error


def wire(engine: LocalEngine, controls: dict) -> None:
    """In the browser, always_last keeps at most one event pending, with the latest text; gradio
    has no debounce option, and a timer would add its delay to every image, so the time of a run
    is the debounce. On the server, NewestOnly holds each session to one run and one waiting,
    for API clients too. Its own unlimited concurrency group lets a request arrive (and
    supersede the waiting one) at once; its runs still take turns with every other generation
    on the registry's run lock. A request waits for its turn on the event loop (async), not on
    a worker thread: a crowd of sessions never takes the threads every other event needs."""
    newest = NewestOnly()

    async def realtime(enabled, prompt, seed, steps, width, height, variant, fast_decoder,
                       model_id, guidance=None, negative_prompt=None, http: gr.Request = None,
                       progress=gr.Progress()):
        """Generate at once, for real-time mode: a newer call of the same session supersedes one
        still waiting. Does nothing unless enabled is true and the prompt has text. Returns the
        PNG image, the seed used, and Markdown with the time per stage.
        """
        if not enabled or prompt is None or isinstance(prompt, str) and not prompt.strip():
            return gr.skip()
        request = Text2Image(prompt=prompt, model_id=model_id, variant=variant, seed=seed,
                             steps=steps, width=width, height=height, fast_decoder=fast_decoder,
                             guidance=guidance, negative_prompt=negative_prompt)
        try:
            result = await newest.run(http.session_hash,
                                      lambda: run_request(engine, request, progress))
        except UserError as e:  # Busy
            raise user_error(e) from None
        if result is None:
            return gr.skip()
        return result.image, result.seed, describe(result), []  # one image: no batch

    document(realtime)
    gr.on([controls["prompt"].input] + [controls[name].release
                                         for name in ("steps", "width", "height", "guidance")],
          realtime, inputs=inputs_of(realtime, controls), outputs=controls["outputs"],
          api_name="realtime",
          trigger_mode="always_last", concurrency_id="realtime", concurrency_limit=None,
          show_progress="minimal")
