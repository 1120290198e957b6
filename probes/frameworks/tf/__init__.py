"""TensorFlow / Keras 3: builder, layers, weights, backend and exporters. Imported only
inside probe workers."""
