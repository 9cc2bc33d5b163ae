"""An Open Inference Protocol v2 client against the toolkit's model server: NVIDIA's tritonclient
(HTTP), unchanged, as a KServe or Triton user would call it. It reads the model's metadata, sends
one tensor per input it lists, typed as the metadata says (missing numbers as NaN), and prints
the answer as JSON: `{"labels": [...], "probabilities": [[...], ...]}`.

Usage: python3 oip_client.py URL MODEL ROWS.json
ROWS.json is a list of records (the source's columns).
"""
import json
import sys

import numpy as np
import tritonclient.http as http

url, model, rows_path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = json.load(open(rows_path))
client = http.InferenceServerClient(url.removeprefix("http://"))
assert client.is_server_live() and client.is_model_ready(model), "the server is not ready"
metadata = client.get_model_metadata(model)
numpy_type = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_, "BYTES": np.object_}
inputs = []
for tensor in metadata["inputs"]:
    name, datatype = tensor["name"], tensor["datatype"]
    values = [row.get(name) for row in rows]
    if datatype in ("FP64", "FP32"):
        values = [np.nan if v is None else v for v in values]
    data = np.array(values, dtype=numpy_type[datatype])
    one = http.InferInput(name, [len(rows)], datatype)
    one.set_data_from_numpy(data, binary_data=False)
    inputs.append(one)
outputs = [http.InferRequestedOutput(o["name"], binary_data=False) for o in metadata["outputs"]]
result = client.infer(model, inputs, outputs=outputs)
labels = [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("label").tolist()]
print(json.dumps({"labels": labels, "probabilities": result.as_numpy("probabilities").tolist()}))
