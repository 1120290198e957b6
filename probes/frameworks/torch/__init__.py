"""PyTorch: builder, custom op, backend and exporters. Imported only inside probe workers."""
