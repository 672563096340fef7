"""Graph floor: the shared graph of households and persons over the administrative divisions.

Households and their members, relations and support obligors (赡养/抚养/扶养义务人), economic items,
the NBS region tree, resident ID numbers (GB 11643), privacy masking, the aid chain (一户一链), the audit log,
the outbox and the scoped reads the API builds on.
"""
