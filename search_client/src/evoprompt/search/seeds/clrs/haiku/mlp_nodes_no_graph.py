"""Node representations from two-layer MLPs, and no graph term at all."""
import haiku as hk
import jax
import jax.numpy as jnp


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
    def node_mlp(x):
        return hk.nets.MLP([nb_triplet_fts, nb_triplet_fts], activation=jax.nn.relu)(x)

    node_1, node_2, node_3 = (node_mlp(z) for _ in range(3))
    edge_1, edge_2, edge_3 = (hk.Linear(nb_triplet_fts)(edge_fts) for _ in range(3))
    return (
        jnp.expand_dims(node_1, axis=(2, 3))
        + jnp.expand_dims(node_2, axis=(1, 3))
        + jnp.expand_dims(node_3, axis=(1, 2))
        + jnp.expand_dims(edge_1, axis=3)
        + jnp.expand_dims(edge_2, axis=2)
        + jnp.expand_dims(edge_3, axis=1)
    )
