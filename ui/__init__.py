"""turbo-studio's Gradio UI: one module per tab, one generation-tab builder fed by the catalogue.
It calls pipelines/ and never OpenVINO itself; `ui.demo.create_demo(settings)` builds the app."""
