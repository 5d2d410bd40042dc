"""Stand-in for NVlabs' torch_utils.misc (install() must leave it to the user)."""


def assert_shape(tensor, ref_shape):
    """``tensor.shape`` must match ``ref_shape`` (None matches any size)."""
    if tensor.ndim != len(ref_shape) or any(
        ref is not None and size != ref for size, ref in zip(tensor.shape, ref_shape)
    ):
        raise AssertionError(f"wrong shape: got {list(tensor.shape)}, expected {ref_shape}")
