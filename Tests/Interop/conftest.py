import os
import sys

# The interop helpers (check tool driver, librdkafka capture) are plain modules beside the tests.
sys.path.insert(0, os.path.dirname(__file__))
