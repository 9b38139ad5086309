import pytest

from pyg_hyper.experiment import (
    ConfigError,
    apply_overrides,
    build_config,
    load_yaml,
    parse_override,
)

DEFAULTS = {'optim': {'lr': 0.005, 'weight_decay': 5e-4},
            'model': {'name': 'GCN', 'hidden_channels': 8, 'edge': True},
            'tags': None}


def test_parse_override_types():
    assert parse_override('optim.lr=1e-3') == {'optim': {'lr': 1e-3}}
    assert parse_override('a=3') == {'a': 3}
    assert parse_override('a=true') == {'a': True}
    assert parse_override('a=[1, 2]') == {'a': [1, 2]}
    assert parse_override('a=Cora') == {'a': 'Cora'}
    assert parse_override('a=x=y') == {'a': 'x=y'}
    assert parse_override('a=') == {'a': ''}  # empty, not null
    assert parse_override('a=null') == {'a': None}


@pytest.mark.parametrize('text,value', [
    # YAML 1.1 would read these as 8, 90, 16 and 'run': values are
    # decimal numbers or the text as typed.
    ('010', 10), ('08', 8), ('1:30', '1:30'), ('0x10', '0x10'),
    ('run #2', 'run #2'), ('.5', 0.5), ('-3', -3), ('2e5', 2e5),
    # Quoted: a string even when it looks like a number.
    ('"1e3"', '1e3'), ("'42'", '42'),
    # Broken YAML stays text (and is refused where a list is expected).
    ('[16,32', '[16,32'),
])
def test_parse_override_reads_numbers_as_written(text, value):
    parsed = parse_override(f'a={text}')['a']
    assert parsed == value and type(parsed) is type(value)


def test_config_files_read_numbers_as_overrides_do(tmp_path):
    # The same text means the same in a file and on the command line.
    (tmp_path / 'c.yaml').write_text('optim:\n  lr: 1e-3\nseeds: 010\n')
    assert load_yaml(str(tmp_path / 'c.yaml')) == {
        'optim': {'lr': 1e-3}, 'seeds': 10}


@pytest.mark.parametrize('value', ['16', '[16,32', '[16.5, 3]', '[true]',
                                   "'16, 32'"])
def test_list_keys_need_lists_of_their_kind(value):
    defaults = {'channels': [16, 32, 256], 'scales': [0.5, 1.0]}
    with pytest.raises(ConfigError, match=r"'channels' .* expects a list "
                       r"of ints, e\.g\. \[16, 32, 256\]"):
        apply_overrides(defaults, [f'channels={value}'])
    cfg = apply_overrides(defaults, ['channels=[8, 8]', 'scales=[1, 2]'])
    assert cfg['channels'] == [8, 8]
    assert cfg['scales'] == [1.0, 2.0] and isinstance(cfg['scales'][0], float)


@pytest.mark.parametrize('text', ['optim.lr', '=3', 'a..b=1'])
def test_parse_override_rejects_malformed(text):
    with pytest.raises(ConfigError, match='key=value|empty key'):
        parse_override(text)


def test_apply_overrides_sets_nested_and_keeps_rest():
    cfg = apply_overrides(DEFAULTS, ['optim.lr=0.01', 'model.name=LGCN'])
    assert cfg['optim'] == {'lr': 0.01, 'weight_decay': 5e-4}
    assert cfg['model']['name'] == 'LGCN'
    assert DEFAULTS['optim']['lr'] == 0.005  # input not mutated


def test_int_accepted_for_float_and_none_accepts_anything():
    assert apply_overrides(DEFAULTS, ['tags=null'])['tags'] is None
    cfg = apply_overrides(DEFAULTS, ['optim.lr=1', 'tags=[a, b]'])
    assert cfg['optim']['lr'] == 1.0 and isinstance(cfg['optim']['lr'], float)
    assert cfg['tags'] == ['a', 'b']


def test_repeated_override_warns_and_the_last_wins():
    # Wrapper scripts pass common overrides, then specific ones.
    with pytest.warns(UserWarning, match=r"'optim.lr' is given twice on the "
                      r"command line \('optim.lr=0.1', then 'optim.lr=0.2'\)"
                      r": the last one is used"):
        cfg = apply_overrides(DEFAULTS, ['optim.lr=0.1', 'model.name=X',
                                         'optim.lr=0.2'])
    assert cfg['optim']['lr'] == 0.2


def test_unknown_key_names_closest_valid_key():
    with pytest.raises(ConfigError, match="unknown config key 'optim.lrr'.*"
                       "did you mean 'optim.lr'"):
        apply_overrides(DEFAULTS, ['optim.lrr=0.1'])
    with pytest.raises(ConfigError, match="did you mean 'model.hidden_channels'"):
        apply_overrides(DEFAULTS, ['model.hiden=16'])


@pytest.mark.parametrize('override,match', [
    ('model.hidden_channels=8.5', 'expects an integer'),
    ('model.hidden_channels=abc', r"expects an integer \(got 'abc'\)"),
    ('optim.lr=abc', r"expects a number \(got 'abc'\)"),
    ('model.edge=1', 'expects true or false'),
    ('model.name=3', 'expects a string'),
    # YAML 1.1 reads on/off/yes/no as booleans: say so, and how to fix it.
    ('model.name=on', r'expects a string \(got True; YAML reads .*quote'),
    ('optim=3', 'is a section'),
    ('optim.lr=null', "'optim.lr' .*cannot be null: it expects a number"),
    ('model.edge=null', 'cannot be null: it expects true or false'),
    ('optim=null', "'optim' .*cannot be null: it expects a section"),
])
def test_wrong_value_kind(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(DEFAULTS, [override])


def test_load_yaml_follows_base(tmp_path):
    (tmp_path / 'base.yaml').write_text('a: 1\nb: {c: 2, d: 3}\n')
    (tmp_path / 'child.yaml').write_text('base: base.yaml\nb: {c: 5}\n')
    assert load_yaml(str(tmp_path / 'child.yaml')) == {'a': 1,
                                                       'b': {'c': 5, 'd': 3}}


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        load_yaml(str(tmp_path / 'missing.yaml'))
    (tmp_path / 'list.yaml').write_text('- 1\n- 2\n')
    with pytest.raises(ConfigError, match='mapping at the top level'):
        load_yaml(str(tmp_path / 'list.yaml'))
    (tmp_path / 'num.yaml').write_text('base: 5\n')
    with pytest.raises(ConfigError, match="'base' must be the path of "
                       "another YAML file.*got 5"):
        load_yaml(str(tmp_path / 'num.yaml'))
    (tmp_path / 'cyc.yaml').write_text('base: cyc.yaml\n')
    with pytest.raises(ConfigError, match='cycle'):
        load_yaml(str(tmp_path / 'cyc.yaml'))
    # PyYAML alone keeps the last of repeated keys, silently.
    (tmp_path / 'dup.yaml').write_text('epochs: 10\nmodel:\n  a: 1\n'
                                       '  a: 2\n')
    with pytest.raises(ConfigError, match=r"key 'a' is given twice\s+in "
                       r"\".*dup.yaml\", line 4"):
        load_yaml(str(tmp_path / 'dup.yaml'))
    # A folder was reported as missing, and Latin-1 text as a bare
    # UnicodeDecodeError that named no file.
    with pytest.raises(ConfigError, match='is a folder; give the path of a '
                       'YAML file'):
        load_yaml(str(tmp_path))
    (tmp_path / 'latin1.yaml').write_bytes('name: caf\xe9\n'.encode('latin-1'))
    with pytest.raises(ConfigError, match=r"latin1.yaml' is not UTF-8 text"):
        load_yaml(str(tmp_path / 'latin1.yaml'))


def test_build_config_merges_runner_task_file_overrides(toy_config):
    cfg = build_config(toy_config, ['optim.lr=0.1', 'seeds=2'])
    assert cfg['task'] == 'toy' and cfg['epochs'] == 30
    assert cfg['seeds'] == 2 and cfg['optim']['lr'] == 0.1
    assert cfg['data']['num_nodes'] == 60  # task default
    assert cfg['name'] == 'toy-h8'  # from Task.describe


def test_build_config_refuses_an_empty_section_in_a_file(tmp_path):
    # 'optim:' with nothing under it is YAML null, not an empty section.
    path = tmp_path / 'run.yaml'
    path.write_text('task: toy\noptim:\n')
    with pytest.raises(ConfigError, match="'optim' .*cannot be null"):
        build_config(str(path))


def test_build_config_unknown_file_key(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('task: toy\nepoch: 3\n')
    with pytest.raises(ConfigError, match="'epoch'.*did you mean 'epochs'"):
        build_config(str(path))


def test_build_config_unknown_task_lists_valid(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('task: nope\n')
    with pytest.raises(ValueError, match="unknown task 'nope'; valid tasks:"
                       ".*toy"):
        build_config(str(path))


def test_build_config_rejects_bad_runner_values(toy_config):
    with pytest.raises(ConfigError, match="'seeds' must be an integer >= 1"):
        build_config(toy_config, ['seeds=0'])


def test_a_key_without_its_section_is_matched_by_its_last_part():
    # 'lr' alone is far from 'optim.lr' as a whole (difflib ratio 0.4; 'lrr'
    # 0.36, 'edg' against 'model.edge' 0.46), but close to the last part of
    # a key: the suggestion names the full key.
    for text, key in [('lr=0.1', 'optim.lr'), ('lrr=0.1', 'optim.lr'),
                      ('edg=true', 'model.edge')]:
        with pytest.raises(ConfigError, match=f"unknown config key "
                           f"'{text.split('=')[0]}' .*did you mean '{key}'"):
            apply_overrides(DEFAULTS, [text])


def test_an_unrelated_key_gets_no_suggestion_but_the_valid_keys():
    # Nothing is close to 'zzqx' (ratio 0 against every key): no guess,
    # only the list of valid keys.
    with pytest.raises(ConfigError) as info:
        apply_overrides(DEFAULTS, ['zzqx=1'])
    message = str(info.value)
    assert 'did you mean' not in message
    assert message.endswith("Valid keys: model.edge, model.hidden_channels, "
                            "model.name, optim.lr, optim.weight_decay, tags")


def test_flatten_keeps_empty_sections_as_leaves():
    # Guards against flatten() dropping an empty section (it then vanished
    # from the dotted keys that resume and override checks compare).
    from pyg_hyper.experiment.config import flatten
    assert flatten({'a': {}, 'b': {'c': 1}}) == {'a': {}, 'b.c': 1}


def test_merge_does_not_alias_the_update():
    # Guards against merge() sharing lists and sections with the update, so
    # that editing the merged config edits the caller's update as well.
    from pyg_hyper.experiment.config import merge
    update = {'a': [1], 'b': {'c': [2]}}
    out = merge({}, update)
    out['a'].append(9)
    out['b']['c'].append(9)
    assert update == {'a': [1], 'b': {'c': [2]}}
