"""One typed client per upstream service, each over one shared ``UpstreamHTTP``."""
