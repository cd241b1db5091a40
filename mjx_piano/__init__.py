"""mjx_piano: bimanual robot piano playing on MuJoCo MJX, batched on the accelerator."""
