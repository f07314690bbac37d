"""nmr: a private npm registry for organisations on GitHub."""
