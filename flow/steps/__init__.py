"""Build steps, grouped by stage, each `step_x(model, cfg) -> model` as in FINN's builder."""
