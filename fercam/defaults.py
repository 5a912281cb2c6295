"""The defaults more than one layer names, each written once.

A leaf that imports nothing, so the CLI's parser and `import fercam` can name them and stay cheap.
"""

DEFAULT_DETECTOR = "mtcnn"  # MTCNN on LiteRT: `fercam.detection` registers it and the others
DEFAULT_PORT = 8737  # the window's, on 127.0.0.1: fixed, so an OBS overlay URL survives restarts (another if taken)
