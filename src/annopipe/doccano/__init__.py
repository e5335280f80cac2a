"""doccano: conversions (pure) now; the REST client and push/pull sync come with issue 3."""
