"""``windpipe up``: the whole system in the foreground."""
