"""The FHIR R4 API (DESIGN contracts) for integrations: third-party practitioner software with an
OAuth2 bearer token and SMART system scopes.

- `pipeline`: the request pipeline (methods, content negotiation, bearer token, request quota),
  responses, and the mapping of every failure to an OperationOutcome (`errors`);
- `params`: search parameters (`_count`, `_getpagesoffset`, dates with prefixes, references);
- `resources`: builders from our models to FHIR R4 resources and Bundles;
- `pseudonyms`: the per-integration patient pseudonyms (least privilege);
- `slots`: Schedule and Slot ids, free slots from the availability engine;
- `writes`: booking and cancelling input, parsed into calls of booking.services;
- `capability`: the CapabilityStatement and the SMART configuration;
- `scoping`: what the request's integration may do (403 / 404);
- `views` (metadata, Practitioner, Schedule, Slot) and `appointment_views` (Appointment): thin
  views, mounted by integrations/fhir_urls.py under /fhir/r4/.
"""
