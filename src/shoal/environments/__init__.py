"""Execution environments: lifecycle (INIT/INVOKE/SHUTDOWN), the Runtime API server side, pools."""
