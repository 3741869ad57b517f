"""`s2i` sub-commands of this group (being written)."""


def register(subparsers):
    """Add this group's sub-commands to the `s2i` parser."""
