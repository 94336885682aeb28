"""pycuda stand-in for recording TAO Deploy's endings on a machine without a GPU."""
