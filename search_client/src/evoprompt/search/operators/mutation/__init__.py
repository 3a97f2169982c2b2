"""The non-LM operator: mutation and crossover by editing the parents' syntax trees.

It plays the part of regularized evolution's mutations (Real et al. 2019) in this search: the
baseline the LM operator is compared with, and the fallback when no LM can be reached. Children are
derived from `prompt.examples` with `ast` edits (layer widths, kernel sizes, strides, layers
duplicated, removed or inserted, activations, crossover of two parents), deterministically given
the seed. A child is whole program text, starting with a comment naming its edits.

Widths must stay consistent. Flax and haiku layers infer their input sizes; for torch, a static
shape tracer follows `forward` from the task's input and rewrites the input-width argument of any
layer that no longer matches what reaches it. When the tracer can follow a parent, each child of it
must trace to the task's output shape too, so children of ordinary parents are valid by
construction; when it cannot, only edits that keep widths consistent on their own are made.

The parts: `program` reads programs (names, layers, the parent and child records), `shapes` is
the tracer, `edits` and `crossover` change a child's tree, and `children` assembles and checks
children and holds `MutationLM`.
"""

from .children import EDITS, MutationLM, mutate

__all__ = ["EDITS", "MutationLM", "mutate"]
