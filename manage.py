#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "squirrel_site.settings")
    try:
        import django  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    # Django's execute_from_command_line, telling a database it cannot reach in one line.
    from squirrel_site.cli import main as run

    run(sys.argv)


if __name__ == "__main__":
    main()
