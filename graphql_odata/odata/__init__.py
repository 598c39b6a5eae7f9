"""OData (RESO Web API): query options -> one checked query -> SQL for a backend's dialect."""
