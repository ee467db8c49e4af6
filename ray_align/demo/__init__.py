"""Demo world: a closed multilingual QA domain built from CLDR data, and its translator."""
