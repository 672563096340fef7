"""Access floor: who is asking and what they may see and do.

The actor of a request, token authentication, users and their role grants, the data-scope predicate over
region codes (province, city, county, township, village) and Casbin's decisions on actions. Built on storage
only; it knows nothing of policy or plugins (the objects plugins add are passed in by the floors above).
"""
