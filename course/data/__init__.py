"""Data as the models see it: vocabularies, batches and the loaders that build them.

- :mod:`course.data.vocab`: token <-> id maps with the special tokens;
- :mod:`course.data.batches`: the batch types, each carrying its tensors to a device;
- :mod:`course.data.loaders`: padding, length-bucketed sampling and the DataLoaders.

Data never imports a model; masks come from :mod:`course.masks`, which models share.
"""
