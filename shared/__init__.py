"""Platform code every automation uses: settings, storage, ledger, pipeline, logging, personal data."""
