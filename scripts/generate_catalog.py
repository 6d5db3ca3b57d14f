#!/usr/bin/env python3
"""Regenerate the Media Gateway content catalog (corral/mediagateway/catalog/data/catalog.json).

Deterministic: the same code writes the same bytes. The generator itself lives in the package
(corral.mediagateway.catalog.generate) so that a test can compare the committed file with it.
"""

from corral.mediagateway.catalog.generate import main

if __name__ == "__main__":
    main()
