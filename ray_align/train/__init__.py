"""Training on Ray Train + DeepSpeed: the worker loop, objectives, and the driver."""
