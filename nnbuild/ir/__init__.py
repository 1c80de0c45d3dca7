"""The intermediate representation: a Graph of Nodes over typed Values, with a text and a JSON form."""
from .graph import Graph, Node, TensorType
from .text import format_graph, parse_graph
from .jsonio import graph_to_json, graph_from_json, save_json, load_json
from .verify import verify

__all__ = ["Graph", "Node", "TensorType", "format_graph", "parse_graph",
           "graph_to_json", "graph_from_json", "save_json", "load_json", "verify"]
