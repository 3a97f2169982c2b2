"""The standard triplet terms, aggregated by a sum over the first node instead of the processor's max.

The processor takes the max over axis 1 of what this returns; returning the sum broadcast along that
axis makes the max equal to the sum."""
import haiku as hk
import jax.numpy as jnp


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
    node_1, node_2, node_3 = (hk.Linear(nb_triplet_fts)(z) for _ in range(3))
    edge_1, edge_2, edge_3 = (hk.Linear(nb_triplet_fts)(edge_fts) for _ in range(3))
    graph = hk.Linear(nb_triplet_fts)(graph_fts)
    triplets = (
        jnp.expand_dims(node_1, axis=(2, 3))
        + jnp.expand_dims(node_2, axis=(1, 3))
        + jnp.expand_dims(node_3, axis=(1, 2))
        + jnp.expand_dims(edge_1, axis=3)
        + jnp.expand_dims(edge_2, axis=2)
        + jnp.expand_dims(edge_3, axis=1)
        + jnp.expand_dims(graph, axis=(1, 2, 3))
    )
    total = jnp.sum(triplets, axis=1, keepdims=True)
    return jnp.broadcast_to(total, triplets.shape)
