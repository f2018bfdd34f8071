"""``p2pswarm keygen``: make a key pair, the stable identity for ``--key``."""

from __future__ import annotations

import argparse
import json
import sys

from ..keys import KEY_FILE_TYPE, KEY_FILE_VERSION, KeyPair
from ._common import EXIT_OK, CommandError, Output

__all__ = ("keygen",)


def keygen(args: argparse.Namespace, out: Output) -> int:
    """With ``--out FILE``: write the key file (mode 0600, never over an existing file) and
    print the public key on stdout. Without: print a key file document on stdout."""
    key_pair = KeyPair.generate()
    public = key_pair.public_key.hex()
    if args.out is None:
        document = {
            "type": KEY_FILE_TYPE,
            "version": KEY_FILE_VERSION,
            "public_key": public,
            "seed": key_pair.seed.hex(),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        out.event("keygen", f"public key {public} (the key file is on stdout)", public_key=public)
        return EXIT_OK
    try:
        key_pair.save(args.out)
    except FileExistsError:
        raise CommandError(f"{args.out} already exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    if out.json_mode:
        out.event("keygen", public_key=public, file=str(args.out))
    else:
        sys.stdout.write(public + "\n")
        out.event("keygen", f"wrote {args.out} (keep it private)")
    return EXIT_OK
