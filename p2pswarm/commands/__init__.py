"""The implementations behind the ``p2pswarm`` command line, one module per subcommand.

:mod:`p2pswarm.cli` only parses arguments and dispatches here. Shared pieces (output in
human or JSON form, topics and key files from the command line, opening a swarm on the
configured network, stdin and stdout for async code) live in :mod:`._common`.
"""

from __future__ import annotations

__all__ = ()
