"""Data bundled with edgekit (package ``edgekit.data``).

``mnist/`` holds the four original MNIST IDX files, gzipped; see its README
for hashes and attribution. Read them through ``edgekit.train.data``.
"""
