"""The offline demo: a sample review site on 127.0.0.1, bundled survey exports, one command."""
