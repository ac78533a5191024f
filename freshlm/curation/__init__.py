"""Curation: raw records in, a candidate dataset (train/heldout + quarantine + stats) out.

Small composable steps over a stream of documents (see :mod:`freshlm.documents` for
the document contract). Importing this package is cheap; steps import their heavy parts lazily.
"""
