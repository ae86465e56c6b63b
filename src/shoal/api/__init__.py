"""HTTP translation only: parse into a typed call, call the layer below, render the AWS shape."""
