"""Built-in transformers: each module is a runnable server (`python -m etl.transformers.<name>`)
mapped to an `aistorage/transformer_<name>` image (etl/images.py); examples in etl/README.md."""
