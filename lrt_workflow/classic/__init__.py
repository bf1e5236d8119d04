"""The classic names of the LOFAR GRID_LRT tools, working, over the new engine.

* `token`: `Token`, `caToken`, `TokenView`, `TokenReduceView`, `TokenList`;
* `handler`: `TokenHandler`, `TokenSet` and the module functions;
* `srmlist`: `srmlist` (alias `SrmList`) and `slice_dicts`.

The token builders (`TokenBuilder`, `TokenDictBuilder`, `TokenJsonBuilder`)
are pure and live in `lrt_workflow.token.builders`; the credentials' classic
names (`picas_cred`, `get_picas_cred`) in `lrt_workflow.couchdb.credentials`.
Users import all of them as before, from `lrt_workflow.token`,
`lrt_workflow.srmlist` and `lrt_workflow.couchdb`.
"""
