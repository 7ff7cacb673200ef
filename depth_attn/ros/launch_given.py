"""Which launch arguments the user gave, for launch files that pass a node parameter only when given.

Precedence, as a ROS 2 user expects it: a launch argument given > the params file > the node's own
defaults. ``DeclareLaunchArgument`` gives an argument left out its default, which then cannot be told
from one given; the action ``record`` runs before the declarations, where only the arguments from the
command line (or an including launch file's ``launch_arguments``) are set.
"""

from typing import Dict, Iterable, Optional, Set, Tuple, Type

from launch.actions import OpaqueFunction
from launch.launch_context import LaunchContext
from launch.substitutions import LaunchConfiguration
from launch_ros.parameter_descriptions import ParameterValue

UNSET = ""  # the default of an argument passed only when given: the params file decides


def arguments_given(names: Iterable[str]) -> Tuple[OpaqueFunction, Set[str]]:
    """(an action to place before the arguments' declarations, the set of ``names`` it finds given)."""
    wanted, given = tuple(names), set()

    def record(context: LaunchContext):
        given.clear()
        given.update(name for name in wanted if name in context.launch_configurations)
        return []

    return OpaqueFunction(function=record), given


def parameters_given(given: Set[str], names: Dict[str, str],
                     types: Optional[Dict[str, Type]] = None) -> Dict[str, object]:
    """{parameter: its launch argument's value} for the arguments in ``given``; ``names``: parameter ->
    argument; ``types``: parameter -> the type to read a value as (else ROS reads it as YAML)."""
    types = types or {}
    return {param: (ParameterValue(LaunchConfiguration(arg), value_type=types[param]) if param in types
                    else LaunchConfiguration(arg))
            for param, arg in names.items() if arg in given}
