"""One linear layer over the concatenated node, edge and graph features of each (i, j) pair, its output
tiled along the third node of the triplet."""
import haiku as hk
import jax.numpy as jnp


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
    batch, nodes = z.shape[0], z.shape[1]
    pair = jnp.concatenate(
        [
            jnp.broadcast_to(z[:, :, None, :], (batch, nodes, nodes, z.shape[-1])),
            jnp.broadcast_to(z[:, None, :, :], (batch, nodes, nodes, z.shape[-1])),
            edge_fts,
            jnp.broadcast_to(graph_fts[:, None, None, :], (batch, nodes, nodes, graph_fts.shape[-1])),
        ],
        axis=-1,
    )
    messages = hk.Linear(nb_triplet_fts)(pair)
    return jnp.tile(messages[:, :, :, None, :], (1, 1, 1, nodes, 1))
